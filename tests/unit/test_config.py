import pytest

from mikupal.config import compose
from mikupal.errors import UserError


def test_defaults_compose_and_validate():
    cfg = compose([])
    assert cfg.profile_name == "cpu" and cfg.asr.device == "cpu"
    assert cfg.separation.kind == "mdx" and cfg.labeler.kind == "gemini"


def test_profile_gpu_scales_resources():
    cfg = compose(["profile=gpu"])
    assert cfg.asr.model == "large-v3" and cfg.asr.batched
    assert cfg.asr.resources.num_gpus > 0 and cfg.asr.resources.workers == "auto"
    from mikupal.engine.plan import Cluster, pool_size

    assert pool_size(cfg.asr.resources, Cluster(cpus=64, gpus=8)) == 8


def test_none_choices_are_valid():
    cfg = compose(["separation=none", "labeler=none", "profile=gpu"])
    assert cfg.separation.kind == "none" and cfg.labeler.kind == "none"


@pytest.mark.parametrize(
    "override, words",
    [
        (["asr.modle=x"], "modle"),
        (["+asr.modle=x"], "asr.modle"),
        (["asr=bogus"], "asr=bogus: no such choice (choices: whisper)"),
        (["vad.aggressiveness=7"], "vad.aggressiveness"),
        (["nonsense"], "nonsense"),
        # renamed keys say their new name
        (["asr.resources.concurrency=2"], "'asr.resources.concurrency' is now 'asr.resources.workers'"),
        (["labeler.concurrency=4"], "'labeler.concurrency' is now 'labeler.requests_in_flight'"),
        (["+faces.resources.batch_size=4"], "'faces.resources.batch_size' is now 'faces.resources.items_per_call'"),
    ],
)
def test_bad_override_is_one_line_naming_the_key(override, words):
    with pytest.raises(UserError) as e:
        compose(override)
    msg = str(e.value)
    assert words in msg and "\n" not in msg


def test_asr_model_may_be_a_path(tmp_path):
    assert compose([f"asr.model={tmp_path}"]).asr.model == str(tmp_path)
