"""The composed Hydra config, validated by pydantic: one model per stage, one line per mistake.

Every default value lives in `conf/` (YAML), once. The models here say only what a value may be
(its type and range); a section built in code (`SegmentConfig(min_seconds=1.0)`, `RunConfig()`)
takes what it is not given from the YAML defaults a plain `mikupal run` composes.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import UserError
from .paths import conf_dir

A = TypeVar("A", bound=BaseModel)


@lru_cache(maxsize=1)
def yaml_defaults() -> dict[str, Any]:
    """The configuration `mikupal run` gets with no override: the single source of default values."""
    return compose_raw([])


def _merged(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in data.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: where the section's defaults sit in the composed YAML ("" = the root); None = no defaults
    _section: ClassVar[Optional[str]] = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_defaults(cls, data: Any) -> Any:
        if cls._section is None or not isinstance(data, dict):
            return data
        base: Any = yaml_defaults()
        for key in filter(None, cls._section.split(".")):
            base = base.get(key, {}) if isinstance(base, dict) else {}
        return _merged(base, data) if isinstance(base, dict) else data


class Resources(_Strict):
    """What one worker of a stage asks of Ray, and how many workers the stage gets (placed by
    `engine/plan.py`)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    workers: Union[int, Literal["auto"]] = 1  # copies of the stage (the pool size); "auto" = one per GPU, or one per CPU core without GPUs
    items_per_call: Optional[int] = None  # items the executor hands one call of the stage (None: the stage's own choice)
    # with workers "auto" on a GPU cluster: workers per GPU; "auto" = as many as the CPUs left per GPU
    # feed (engine/plan.py), num_gpus then being the pool's share of each GPU, split among them
    workers_per_gpu: Union[int, Literal["auto"]] = 1

    def widest(self, other: "Resources") -> "Resources":
        """Field-wise max of two requests ("auto" wins over a number): one worker doing two jobs."""
        if self.workers == "auto" or other.workers == "auto":
            workers = "auto"
        else:
            workers = max(int(self.workers), int(other.workers))
        sizes = [x for x in (self.items_per_call, other.items_per_call) if x is not None]
        if self.workers_per_gpu == "auto" or other.workers_per_gpu == "auto":
            per_gpu = "auto"
        else:
            per_gpu = max(int(self.workers_per_gpu), int(other.workers_per_gpu))
        return Resources(num_cpus=max(self.num_cpus, other.num_cpus), num_gpus=max(self.num_gpus, other.num_gpus),
                         workers=workers, items_per_call=max(sizes) if sizes else None, workers_per_gpu=per_gpu)


class SeparationConfig(_Strict):
    _section: ClassVar[str] = "separation"
    kind: Literal["mdx", "none"]
    model: str
    chunk_seconds: float = Field(gt=0)  # peak RAM grows ~4.4 MB per second of chunk (audio-separator's copies)
    context_seconds: float = Field(ge=0)  # separated around each chunk and trimmed: seamless joins
    segment_size: int
    overlap: float = Field(ge=0, lt=1)
    batch_size: int
    resources: Resources


class VadConfig(_Strict):
    _section: ClassVar[str] = "vad"
    kind: Literal["webrtc"]
    aggressiveness: int = Field(ge=0, le=3)
    frame_ms: Literal[10, 20, 30]
    padding_ms: int = Field(ge=0)
    hangover_ms: int = Field(ge=0)
    min_speech_ms: int = Field(ge=0)
    resources: Resources


class AsrConfig(_Strict):
    _section: ClassVar[str] = "asr"
    kind: Literal["whisper"]
    model: str
    device: Literal["auto", "cpu", "cuda"]
    compute_type: str
    batched: bool
    batch_size: int = Field(ge=1)
    beam_size: int = Field(ge=1)
    temperature: list[float] = Field(min_length=1)  # [0.0]: no sampling fallback, the same text every run
    language: Optional[str]
    language_id_model: Optional[str] = None  # multilingual whisper that checks the language for a *.en model
    language_id_min_probability: float = Field(0.2, ge=0, le=1)  # below this p of the model's language: language_mismatch
    pack: bool  # short videos of one call share whisper windows (audio/packing.py)
    cpu_threads: int = Field(ge=0)
    resources: Resources


class SegmentConfig(_Strict):
    _section: ClassVar[str] = "segment"
    min_seconds: float = Field(ge=0)
    max_seconds: float = Field(gt=0)
    pause_seconds: float = Field(ge=0)
    split_pause_seconds: float = Field(ge=0)  # a silence this long always ends an utterance
    pad_seconds: float = Field(ge=0)  # kept around the first/last word (never into a neighbour word)
    max_no_speech_prob: float = Field(ge=0, le=1)
    min_avg_logprob: float
    languages: list[str]
    min_words: int


class SpeakerConfig(_Strict):
    _section: ClassVar[str] = "speaker"
    """Voice embeddings, speaker changes inside an utterance, and speaker identity."""

    kind: Literal["ge2e", "none"]
    model: str
    window_seconds: float = Field(gt=0)
    hop_seconds: float = Field(gt=0)
    change_similarity: float = Field(ge=-1, le=1)
    min_side_windows: int = Field(ge=1)
    overlap_similarity: float = Field(ge=-1, le=1)
    # short turns (speaker/turns.py): word-bounded spans of turn_min..turn_max seconds of voice
    turn_min_seconds: float = Field(gt=0)
    turn_max_seconds: float = Field(gt=0)
    turn_thresholds: list[tuple[float, float, float]] = Field(min_length=1)  # (seconds, doubt, sure)
    turn_cue_bonus: float = Field(ge=0, le=1)
    precision: Literal["auto", "fp32", "bf16"]  # auto: bf16 on CPUs with native bf16
    cluster_similarity: float = Field(ge=-1, le=1)
    attach_similarity: float = Field(ge=-1, le=1)
    min_support_seconds: float = Field(ge=0)
    pair_similarity: float = Field(ge=-1, le=1)
    global_similarity: float = Field(ge=-1, le=1)
    resources: Resources


class FacesConfig(_Strict):
    _section: ClassVar[str] = "faces"
    kind: Literal["yunet", "s3fd"]
    model: str
    score_threshold: float = Field(ge=0, le=1)
    input_width: int = Field(ge=32)
    detect_every: int = Field(ge=1)
    min_face_px: int = Field(ge=1)
    iou_threshold: float = Field(ge=0, le=1)
    max_gap: int = Field(ge=0)
    smooth_frames: int = Field(ge=1)
    shot_cut_threshold: float = Field(ge=0, le=2)
    min_track_frames: int = Field(ge=1)
    work_width: int = Field(ge=64)  # frames of an utterance are decoded once at this width
    batch_size: int = Field(ge=1)  # frames per detector forward pass (S3FD; YuNet runs one frame at a time)
    batch_wait_s: float = Field(default=0.05, ge=0)  # items_per_call > 1: the longest a model call waits for others
    resources: Resources


class AsdConfig(_Strict):
    _section: ClassVar[str] = "asd"
    kind: Literal["light-asd", "lr-asd", "talknet"]
    model: str
    windows: list[float]
    threshold: float
    min_speaking_fraction: float = Field(ge=0, le=1)
    min_coverage: float = Field(ge=0, le=1)
    overlap_margin: float = Field(ge=0)
    min_evidence_fraction: float = Field(ge=0, le=1)
    max_scored_seconds: Optional[float] = Field(ge=0)
    scored_window_seconds: float = Field(gt=0)
    max_offset_frames: int = Field(ge=0)
    min_turn_seconds: float = Field(gt=0)
    dense_from_faces: Optional[int] = Field(ge=1)  # this many candidate faces: ASD on every frame of each (null: never)
    dense_on_doubt: bool  # one face: every frame too when the voice or the words suggest a second person
    # a first, shorter pass; the full budget only when it leaves the speaker in doubt
    first_pass_seconds: Optional[float] = Field(ge=0)
    early_stop_fraction: float = Field(ge=0, le=1)
    precision: Literal["auto", "fp32", "bf16"]
    resources: Resources


class Price(_Strict):
    """USD per 1M tokens."""

    text: float = 0.0
    image: float = 0.0
    video: float = 0.0
    audio: float = 0.0
    output: float = 0.0


class LabelerConfig(_Strict):
    _section: ClassVar[str] = "labeler"
    kind: Literal["gemini", "openai", "none"]
    model: str  # conf/labeler/gemini.yaml: why this one
    mode: Literal["video", "audio", "text"]
    prompt_version: str
    temperature: float
    seed: Optional[int]
    media_resolution: Literal["low", "medium", "high"]
    inline_max_mb: float  # raw bytes; base64 grows them by 4/3 under the 20 MB request limit
    api_key_env: str
    api_key_file: Optional[str]
    base_url: Optional[str]
    requests_in_flight: int = Field(ge=1)  # per labeler worker; `resources.workers` is how many workers
    requests_per_minute: float = Field(gt=0)
    tokens_per_minute: float = Field(gt=0)
    timeout_s: float = Field(gt=0)
    max_retries: int = Field(ge=0)
    backoff_base_s: float = Field(ge=0)
    backoff_max_s: float = Field(ge=0)
    invalid_retries: int = Field(ge=0)
    max_usd: Optional[float] = Field(ge=0)
    samples: int = Field(ge=1)
    max_output_tokens: int = Field(ge=16)
    batch: bool
    relabel: bool  # `mikupal label`: label every segment again into labels/<model>__<prompt_version>/
    batch_discount: float = Field(ge=0, le=1)
    thinking_budget: Optional[int] = Field(ge=-1)  # Gemini thinking tokens; None = model default, -1 = dynamic
    context_turns: int = Field(ge=0)  # text mode (MELT): earlier utterances of the same video sent as context
    # openai kind only (conf/labeler/openai.yaml sets them; None under another kind)
    video_transport: Optional[Literal["frames", "video_url"]] = None  # JPEG frames, or the MP4 as a video_url data URL (vLLM)
    frames_fps: Optional[float] = Field(None, gt=0)  # frames transport: frames sampled per second ...
    max_frames: Optional[int] = Field(None, ge=1)  # ... and at most this many per clip
    use_audio_in_video: Optional[bool] = None  # video_url to vLLM: the model hears the clip's audio (null: omni models)
    prices: dict[str, Price]
    resources: Resources

    def price(self) -> Optional[Price]:
        """The model's price, or None when `prices` has no entry for it (costs are then unknown)."""
        return self.prices.get(self.model)


class EngineConfig(_Strict):
    _section: ClassVar[str] = "engine"
    kind: Literal["auto", "ray", "local", "sequential"]  # auto: ray with a cluster or GPUs, else local (engine/choice.py)
    address: Optional[str]
    num_cpus: Optional[int]
    object_store_memory_gb: float = Field(gt=0)
    max_actor_restarts: int = Field(ge=0)
    max_task_retries: int = Field(ge=0)
    # one stage on one item (a whole video before the fan-out, one utterance after it) may take at
    # most item_timeout_s + item_timeout_per_media_s x the item's media seconds; past it the item
    # is rejected (reason timeout). Both 0 = no limit.
    # sequential engine: math-library threads of each stage (null = each library's default, i.e. every
    # core); Ray pool workers get their resources' whole CPUs instead
    threads: Optional[int] = Field(ge=1)
    item_timeout_s: float = Field(ge=0)
    item_timeout_per_media_s: float = Field(ge=0)
    progress: bool
    require_gpu: bool  # a model whose stage holds a GPU but runs on the CPU stops the run (profile=gpu)
    max_workers_per_gpu: int = Field(ge=1)  # cap on a "workers_per_gpu: auto" pool's workers per GPU
    # consecutive light stages (each under a core, no GPU, one worker, one item per call) of one level
    # run in one worker, one after another on each item (engine/plan.py `worker_groups`)
    fuse_light_stages: bool = True


class QualityConfig(_Strict):
    _section: ClassVar[str] = "quality"
    """DNSMOS on each kept utterance; a score below a set minimum rejects it (`low_quality`)."""

    kind: Literal["dnsmos", "none"]
    model_dir: Optional[str]  # folder with sig_bak_ovr.onnx + model_v8.onnx; None = the speechmos wheel's
    min_ovrl: Optional[float] = Field(ge=1, le=5)
    min_sig: Optional[float] = Field(ge=1, le=5)
    min_bak: Optional[float] = Field(ge=1, le=5)
    min_p808: Optional[float] = Field(ge=1, le=5)
    max_windows: Optional[int] = Field(ge=1)  # utterances under 9.01 s: windows scored (evenly spaced); None = all
    resources: Resources


class ProsodyConfig(_Strict):
    _section: ClassVar[str] = "prosody"
    """Measured pitch, speaking rate, loudness, peak and SNR of each kept segment (`audio/prosody.py`)."""

    kind: Literal["measured", "none"]
    #: world: WORLD's DIO + StoneMask with a clean-up (MIT, the default install); praat: Praat's
    #: autocorrelation tracker (GPL-3.0, `pip install "mikupal[praat]"`); `audio/pitch.py`
    pitch_tracker: Literal["world", "praat"]
    pitch_floor_hz: float = Field(gt=0)
    pitch_ceiling_hz: float = Field(gt=0)
    resources: Resources

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_praat(cls, v: Any) -> Any:
        return "measured" if v == "praat" else v  # the name before pitch_tracker: Praat is now one tracker of two

    @model_validator(mode="after")
    def _range(self) -> "ProsodyConfig":
        if self.pitch_ceiling_hz <= self.pitch_floor_hz:
            raise ValueError(f"prosody.pitch_ceiling_hz ({self.pitch_ceiling_hz}) must be above pitch_floor_hz "
                             f"({self.pitch_floor_hz})")
        return self


class DuplicatesConfig(_Strict):
    _section: ClassVar[str] = "duplicates"
    """The same speech twice in the input, found at commit from words, timing and voice."""

    kind: Literal["words_timing_voice", "none"]
    min_words: int = Field(ge=2)
    min_coverage: float = Field(gt=0, le=1)
    max_timing_s: float = Field(gt=0)
    min_voice_similarity: float = Field(ge=-1, le=1)


class DatasetConfig(_Strict):
    _section: ClassVar[str] = "dataset"
    sample_rate: int = Field(ge=8000)
    clip_size: int = Field(ge=32)
    clip_fps: float = Field(gt=0)
    clip_margin: float = Field(ge=0)
    debug_render: bool


class RunConfig(_Strict):
    _section: ClassVar[str] = ""
    input: Optional[str]
    output: Optional[str]
    models_dir: str
    taxonomy: str
    dry_run: bool
    offline: bool
    profile_name: str
    separation: SeparationConfig
    vad: VadConfig
    asr: AsrConfig
    segment: SegmentConfig
    speaker: SpeakerConfig
    faces: FacesConfig
    asd: AsdConfig
    labeler: LabelerConfig
    engine: EngineConfig
    quality: QualityConfig
    prosody: ProsodyConfig
    duplicates: DuplicatesConfig
    dataset: DatasetConfig

    @field_validator("models_dir")
    @classmethod
    def _expand(cls, v: str) -> str:
        return str(Path(os.path.expanduser(v)))


def _loc(err: dict[str, Any]) -> str:
    return ".".join(str(p) for p in err["loc"]) or "<root>"


#: keys that were renamed, so a run with the old name says what it is called now: the two levels of
#: parallelism and the two kinds of batch each have a name that says which one they are
RENAMED = {"resources.concurrency": "resources.workers", "resources.batch_size": "resources.items_per_call",
           "labeler.concurrency": "labeler.requests_in_flight"}


def _renamed(key: str) -> Optional[str]:
    for old, new in RENAMED.items():
        if key == old or key.endswith("." + old):
            return key[: len(key) - len(old)] + new
    return None


def closest(word: str, known: Sequence[str]) -> Optional[str]:
    """The known spelling nearest `word` (difflib), or None when none is close."""
    import difflib

    best = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    if not best and "." in word:  # a typo in the last part: compare within the same section
        head, _, tail = word.rpartition(".")
        inner = [k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == head]
        best = [f"{head}.{m}" for m in difflib.get_close_matches(tail, inner, n=1, cutoff=0.5)]
    return best[0] if best else None


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """' (did you mean asr.model?)' for the closest known spelling, '' when none is close."""
    best = closest(word, known)
    return f" (did you mean {best}?)" if best else ""


def _flat_keys(data: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(data, dict):
        for k, v in data.items():
            key = f"{prefix}{k}"
            out.append(key)
            if isinstance(v, dict) and k != "prices":  # price tables are data, not settings
                out.extend(_flat_keys(v, key + "."))
    return out


def known_keys() -> list[str]:
    """Every setting of the default composition, dotted (asr.model, engine.kind ...), and the groups."""
    return _flat_keys(yaml_defaults()) + config_groups()


def config_groups() -> list[str]:
    return sorted(p.name for p in conf_dir().iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def group_choices(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def _unknown_key(key: str, known: Optional[Sequence[str]] = None) -> UserError:
    new = _renamed(key)
    if new:
        return UserError(f"config error: '{key}' is now '{new}'")
    hint = did_you_mean(key, known if known is not None else known_keys())
    return UserError(f"config error: unknown key '{key}'{hint}")


def not_key_value(arg: str, following: Optional[str] = None, known: Sequence[str] = ()) -> Optional[UserError]:
    """The one-line error for an argument that is not `key=value` (`--input x`, a bare path), with
    what was probably meant; None for an argument of the grammar."""
    if "=" in arg and not arg.startswith(("-", "=")):
        return None
    if arg.startswith("~") and "=" not in arg:  # Hydra's deletion
        return None
    if arg.startswith("-"):
        name = arg.lstrip("-").split("=", 1)[0].replace("-", "_")
        value = arg.split("=", 1)[1] if "=" in arg else (following if following and "=" not in following else "...")
        guess = name if name in known or not known else (closest(name, known) or name)
        return UserError(f"unknown option '{arg}': settings are written key=value (did you mean {guess}={value}?)")
    if arg in known:
        return UserError(f"expected key=value, got '{arg}' (did you mean {arg}=...?)")
    looks_like_path = "/" in arg or os.path.exists(os.path.expanduser(arg)) or Path(arg).suffix != ""
    if looks_like_path:
        return UserError(f"expected key=value, got '{arg}' (did you mean input={arg}?)")
    return UserError(f"expected key=value, got '{arg}'{did_you_mean(arg, known)}")


def validate(raw: dict[str, Any], model: type[BaseModel] = RunConfig) -> Any:
    """Validate a plain dict; the first problem becomes a one-line UserError naming its key."""
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = _loc(err)
        if err["type"] == "extra_forbidden":
            raise _unknown_key(key, known_keys() if model is RunConfig else list(model.model_fields)) from None
        raise UserError(f"config error: {key}: {err['msg']} (got {err.get('input')!r})") from None


def parse_overrides(overrides: Sequence[str], model: type[A]) -> A:
    """A command's `key=value` arguments (OmegaConf dotlist grammar, `+key=` accepted) -> validated
    `model`. The run's own configuration goes through `compose` (Hydra: groups, sweeps); commands
    whose arguments are one flat model (evaluate, agreement, export ...) come here."""
    from omegaconf import OmegaConf

    items = []
    for i, o in enumerate(overrides):
        bad = not_key_value(o, overrides[i + 1] if i + 1 < len(overrides) else None, list(model.model_fields))
        if bad is not None:
            raise bad
        items.append(o.lstrip("+"))
    try:
        data = OmegaConf.to_container(OmegaConf.from_dotlist(items), resolve=True)
    except Exception as e:  # noqa: BLE001 - omegaconf and yaml raise grammar errors of many types
        raise UserError(f"cannot parse overrides {list(overrides)}: {e}") from None
    try:
        return model.model_validate(data)
    except ValidationError as e:
        known = ", ".join(model.model_fields)
        problems = []
        for err in e.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key {key!r}{did_you_mean(key, list(model.model_fields))} (known: {known})")
            elif err["type"] == "missing":
                problems.append(f"missing {key}=...")
            else:
                problems.append(f"{key}: {err['msg']}")
        raise UserError("; ".join(problems)) from None


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

    for i, o in enumerate(overrides):
        bad = not_key_value(o, overrides[i + 1] if i + 1 < len(overrides) else None, known_keys() if overrides else ())
        if bad is not None:
            raise bad
        key = o.split("=", 1)[0].lstrip("+~")
        if _renamed(key):
            raise _unknown_key(key)
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as e:
        raise _translated(e, overrides) from None


def _translated(e: BaseException, overrides: Sequence[str]) -> UserError:
    """Hydra's message in our words, one line, with the likely fix: an unknown key or group choice
    gets a "did you mean" (difflib over the known keys / the group's files)."""
    import re

    text = _one_line(e)
    m = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
    if m:
        group, value = m.groups()
        choices = group_choices(group)
        return UserError(f"config error: {group}={value}: no such choice{did_you_mean(value, choices)} "
                         f"(choices: {', '.join(choices)})")
    m = re.search(r"Could not override '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    if m:
        key = m.group(1)
        full = next((o.split("=", 1)[0].lstrip("+~") for o in overrides if o.split("=", 1)[0].lstrip("+~").endswith(key)), key)
        return _unknown_key(full)
    m = re.search(r"Error parsing override '([^']+)'", text)
    if m:
        return UserError(f"config error: cannot read '{m.group(1)}' as key=value (a value with spaces or "
                         "special characters goes in quotes: key='a value')")
    return UserError(f"config error: {text}")


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
