"""The composed Hydra config, validated by pydantic: one model per stage, one line per mistake."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import UserError
from .paths import conf_dir


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(_Strict):
    """What one worker of a stage asks of Ray, and how many workers the stage gets."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    concurrency: Union[int, Literal["auto"]] = 1  # pool size; "auto" = one per GPU, or one per CPU core without GPUs
    batch_size: Optional[int] = None

    def pool_size(self, cluster_gpus: float, cluster_cpus: float) -> int:
        if self.concurrency != "auto":
            return max(1, int(self.concurrency))
        if self.num_gpus > 0 and cluster_gpus > 0:
            return max(1, int(cluster_gpus))
        # CPU workers are single-threaded (models run on one thread each): one per core, within
        # the CPUs each asks for
        return max(1, min(int(cluster_cpus), int(cluster_cpus / max(self.num_cpus, 1e-9))))

    @property
    def worker_threads(self) -> int:
        """Math-library threads for one worker of a pool: the whole CPUs it asks for, at least one.
        Workers that each ran one thread per core would fight over the same cores."""
        return max(1, int(self.num_cpus))

    def widest(self, other: "Resources") -> "Resources":
        """Field-wise max of two requests ("auto" wins over a number): one worker doing two jobs."""
        if self.concurrency == "auto" or other.concurrency == "auto":
            conc = "auto"
        else:
            conc = max(int(self.concurrency), int(other.concurrency))
        sizes = [x for x in (self.batch_size, other.batch_size) if x is not None]
        return Resources(num_cpus=max(self.num_cpus, other.num_cpus), num_gpus=max(self.num_gpus, other.num_gpus),
                         concurrency=conc, batch_size=max(sizes) if sizes else None)


class SeparationConfig(_Strict):
    kind: Literal["mdx", "none"] = "mdx"
    model: str = "UVR-MDX-NET-Inst_HQ_3.onnx"
    chunk_seconds: float = Field(60.0, gt=0)  # peak RAM grows ~4.4 MB per second of chunk (audio-separator's copies)
    context_seconds: float = Field(1.0, ge=0)  # separated around each chunk and trimmed: seamless joins
    segment_size: int = 256
    overlap: float = Field(0.25, ge=0, lt=1)
    batch_size: int = 1
    resources: Resources = Resources()


class VadConfig(_Strict):
    kind: Literal["webrtc"] = "webrtc"
    aggressiveness: int = Field(2, ge=0, le=3)
    frame_ms: Literal[10, 20, 30] = 30
    padding_ms: int = Field(200, ge=0)
    hangover_ms: int = Field(300, ge=0)
    min_speech_ms: int = Field(250, ge=0)
    resources: Resources = Resources()


class AsrConfig(_Strict):
    kind: Literal["whisper"] = "whisper"
    model: str = "small"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "default"
    batched: bool = False
    batch_size: int = Field(8, ge=1)
    beam_size: int = Field(5, ge=1)
    language: Optional[str] = None
    cpu_threads: int = Field(0, ge=0)
    resources: Resources = Resources()


class SegmentConfig(_Strict):
    min_seconds: float = Field(2.0, ge=0)
    max_seconds: float = Field(15.0, gt=0)
    pause_seconds: float = Field(0.5, ge=0)
    split_pause_seconds: float = Field(2.0, ge=0)  # a silence this long always ends an utterance
    pad_seconds: float = Field(0.1, ge=0)  # kept around the first/last word (never into a neighbour word)
    max_no_speech_prob: float = Field(0.6, ge=0, le=1)
    min_avg_logprob: float = -1.0
    languages: list[str] = Field(default_factory=list)
    min_words: int = 1


class SpeakerConfig(_Strict):
    """Voice embeddings, speaker changes inside an utterance, and speaker identity."""

    kind: Literal["ge2e", "none"] = "ge2e"
    model: str = "ge2e/pretrained.pt"
    window_seconds: float = Field(1.5, gt=0)
    hop_seconds: float = Field(0.5, gt=0)
    change_similarity: float = Field(0.75, ge=-1, le=1)
    min_side_windows: int = Field(2, ge=1)
    overlap_similarity: float = Field(0.68, ge=-1, le=1)
    cluster_similarity: float = Field(0.75, ge=-1, le=1)
    global_similarity: float = Field(0.80, ge=-1, le=1)
    resources: Resources = Resources()


class FacesConfig(_Strict):
    kind: Literal["yunet", "s3fd"] = "yunet"
    model: str = "yunet/yunet_s_640_640.onnx"
    score_threshold: float = Field(0.6, ge=0, le=1)
    input_width: int = Field(320, ge=32)
    detect_every: int = Field(5, ge=1)
    min_face_px: int = Field(40, ge=1)
    iou_threshold: float = Field(0.3, ge=0, le=1)
    max_gap: int = Field(10, ge=0)
    smooth_frames: int = Field(5, ge=1)
    shot_cut_threshold: float = Field(0.5, ge=0, le=2)
    min_track_frames: int = Field(10, ge=1)
    work_width: int = Field(640, ge=64)  # frames of an utterance are decoded once at this width
    resources: Resources = Resources()


class AsdConfig(_Strict):
    kind: Literal["light-asd", "lr-asd", "talknet"] = "light-asd"
    model: str = "light-asd/pretrain_AVA_CVPR.model"
    windows: list[float] = Field(default_factory=lambda: [0.0])
    threshold: float = 0.0
    min_speaking_fraction: float = Field(0.4, ge=0, le=1)
    min_coverage: float = Field(0.5, ge=0, le=1)
    overlap_margin: float = Field(0.5, ge=0)
    min_evidence_fraction: float = Field(0.15, ge=0, le=1)
    max_scored_seconds: Optional[float] = Field(3.0, ge=0)
    scored_window_seconds: float = Field(3.0, gt=0)
    max_offset_frames: int = Field(5, ge=0)
    min_turn_seconds: float = Field(0.5, gt=0)
    dense_from_faces: Optional[int] = Field(2, ge=1)  # this many candidate faces: ASD on every frame of each (null: never)  # another face seen speaking this long (alone or at once) cuts the utterance
    # a first, shorter pass; the full budget only when it leaves the speaker in doubt
    first_pass_seconds: Optional[float] = Field(None, ge=0)
    early_stop_fraction: float = Field(0.8, ge=0, le=1)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    resources: Resources = Resources()


class Price(_Strict):
    """USD per 1M tokens."""

    text: float = 0.0
    image: float = 0.0
    video: float = 0.0
    audio: float = 0.0
    output: float = 0.0


class LabelerConfig(_Strict):
    kind: Literal["gemini", "openai", "none"] = "gemini"
    model: str = "gemini-3.8-flash"  # conf/labeler/gemini.yaml: why this one
    mode: Literal["video", "audio", "text"] = "video"
    prompt_version: str = "v1"
    temperature: float = 0.0
    seed: Optional[int] = 1234
    media_resolution: Literal["low", "medium", "high"] = "low"
    inline_max_mb: float = 14.0  # raw bytes; base64 grows them by 4/3 under the 20 MB request limit
    api_key_env: str = "GEMINI_API_KEY"
    api_key_file: Optional[str] = None
    base_url: Optional[str] = None
    concurrency: int = Field(8, ge=1)
    requests_per_minute: float = Field(1000, gt=0)
    tokens_per_minute: float = Field(4_000_000, gt=0)
    timeout_s: float = Field(120, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    invalid_retries: int = Field(2, ge=0)
    max_usd: Optional[float] = Field(None, ge=0)
    samples: int = Field(1, ge=1)
    max_output_tokens: int = Field(2048, ge=16)
    batch: bool = False
    relabel: bool = False  # `mikupal label`: label every segment again into labels/<model>__<prompt_version>/
    batch_discount: float = Field(0.5, ge=0, le=1)
    thinking_budget: Optional[int] = Field(None, ge=-1)  # Gemini thinking tokens; None = model default, -1 = dynamic
    context_turns: int = Field(2, ge=0)  # text mode (MELT): earlier utterances of the same video sent as context
    video_transport: Literal["frames", "video_url"] = "frames"  # openai kind: JPEG frames, or the MP4 as a video_url data URL (vLLM)
    frames_fps: float = Field(1.0, gt=0)  # openai kind, frames transport: frames sampled per second ...
    max_frames: int = Field(16, ge=1)  # ... and at most this many per clip
    prices: dict[str, Price] = Field(default_factory=dict)
    resources: Resources = Resources()

    def price(self) -> Optional[Price]:
        """The model's price, or None when `prices` has no entry for it (costs are then unknown)."""
        return self.prices.get(self.model)


class EngineConfig(_Strict):
    kind: Literal["ray", "sequential"] = "ray"
    address: Optional[str] = None
    num_cpus: Optional[int] = None
    object_store_memory_gb: float = Field(1.0, gt=0)
    max_actor_restarts: int = Field(2, ge=0)
    max_task_retries: int = Field(1, ge=0)
    # one stage on one item (a whole video before the fan-out, one utterance after it) may take at
    # most item_timeout_s + item_timeout_per_media_s x the item's media seconds; past it the item
    # is rejected (reason timeout). Both 0 = no limit.
    # sequential engine: math-library threads of each stage (null = each library's default, i.e. every
    # core); Ray pool workers get their resources' whole CPUs instead
    threads: Optional[int] = Field(None, ge=1)
    item_timeout_s: float = Field(600, ge=0)
    item_timeout_per_media_s: float = Field(20, ge=0)
    progress: bool = True


class QualityConfig(_Strict):
    """DNSMOS on each kept utterance; a score below a set minimum rejects it (`low_quality`)."""

    kind: Literal["dnsmos", "none"] = "dnsmos"
    model_dir: Optional[str] = None  # folder with sig_bak_ovr.onnx + model_v8.onnx; None = the speechmos wheel's
    min_ovrl: Optional[float] = Field(3.0, ge=1, le=5)
    min_sig: Optional[float] = Field(None, ge=1, le=5)
    min_bak: Optional[float] = Field(None, ge=1, le=5)
    min_p808: Optional[float] = Field(None, ge=1, le=5)
    max_windows: Optional[int] = Field(3, ge=1)  # utterances under 9.01 s: windows scored (evenly spaced); None = all
    resources: Resources = Resources(num_cpus=0.125)


class DatasetConfig(_Strict):
    sample_rate: int = Field(44100, ge=8000)
    clip_size: int = Field(224, ge=32)
    clip_fps: float = Field(25.0, gt=0)
    clip_margin: float = Field(0.6, ge=0)
    debug_render: bool = False


class RunConfig(_Strict):
    input: Optional[str] = None
    output: Optional[str] = None
    models_dir: str = "~/.cache/mikupal/models"
    taxonomy: str = "cowen_keltner_26"
    dry_run: bool = False
    offline: bool = False
    profile_name: str = "cpu"
    separation: SeparationConfig = SeparationConfig()
    vad: VadConfig = VadConfig()
    asr: AsrConfig = AsrConfig()
    segment: SegmentConfig = SegmentConfig()
    speaker: SpeakerConfig = SpeakerConfig()
    faces: FacesConfig = FacesConfig()
    asd: AsdConfig = AsdConfig()
    labeler: LabelerConfig = LabelerConfig()
    engine: EngineConfig = EngineConfig()
    quality: QualityConfig = QualityConfig()
    dataset: DatasetConfig = DatasetConfig()

    @field_validator("models_dir")
    @classmethod
    def _expand(cls, v: str) -> str:
        return str(Path(os.path.expanduser(v)))


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "<root>"


def validate(raw: dict[str, Any], model: type[BaseModel] = RunConfig) -> Any:
    """Validate a plain dict; the first problem becomes a one-line UserError naming its key."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = _loc(err)
        if err["type"] == "extra_forbidden":
            raise UserError(f"config error: unknown key '{key}'") from None
        raise UserError(f"config error: {key}: {err['msg']} (got {err.get('input')!r})") from None


def compose(overrides: list[str], config_name: str = "config") -> RunConfig:
    """Compose conf/<config_name>.yaml with Hydra-style overrides and validate it."""
    raw = compose_raw(overrides, config_name)
    return validate(raw)


def compose_raw(overrides: list[str], config_name: str = "config") -> dict[str, Any]:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as e:
        raise UserError(f"config error: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    """Hydra nests the useful words in causes and spreads them over lines: join them into one."""
    parts: list[str] = []
    while e is not None:
        for line in str(e).strip().splitlines():
            line = line.strip()
            if line and line not in parts and "full_key" not in line and "object_type" not in line:
                parts.append(line)
        e = e.__cause__ or e.__context__
    return " ".join(parts) or "invalid configuration"
