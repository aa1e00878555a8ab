import subprocess
import sys


def mikupal(*args, **kw):
    return subprocess.run([sys.executable, "-m", "mikupal.cli", *args], capture_output=True, text=True, timeout=120, **kw)


def test_help_lists_subcommands():
    r = mikupal("--help")
    assert r.returncode == 0
    for cmd in ("run", "label", "evaluate", "agreement", "report", "models"):
        assert f"\n  {cmd} " in r.stdout


def test_missing_input_is_one_line(tmp_path):
    r = mikupal("run", f"input={tmp_path}/nope.mp4", f"output={tmp_path}/out")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "input not found" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_override_is_one_line(tmp_path):
    r = mikupal("run", f"input={tmp_path}", f"output={tmp_path}/out", "asr.bogus=1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "asr.bogus" in r.stderr


def test_unknown_command():
    r = mikupal("frobnicate")
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_models_reports_missing_files_offline(tmp_path):
    r = mikupal("models", f"models_dir={tmp_path}")
    assert r.returncode == 1  # what the configuration needs is missing
    assert "MISSING" in r.stdout and "light-asd/pretrain_AVA_CVPR.model" in r.stdout


def test_audio_debug_entry_still_runs_as_a_module():
    """`python -m mikupal.audio` hands over to commands/audio_frontend.py (the audio package runs no stage)."""
    r = subprocess.run([sys.executable, "-m", "mikupal.audio", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("Debug entry: `python -m mikupal.audio FILE"), r.stderr
