"""``asma zoo`` click group: in-process with explicit --endpoint/--cache-dir, plus one subprocess run
configured only through the environment (HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE are read at import)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from asma.cli.zoo import zoo
from asma.zoo.registry import ZooEntry, write_manifest
from hub_server import hub_env


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(zoo, [str(a) for a in args])
    return invoke


def test_list_is_honest_about_an_empty_zoo(run, tmp_path):
    r = run("list")
    assert r.exit_code == 0, r.output
    assert "no asma weights have been published to the Hub yet" in r.output and "--manifest" in r.output
    assert "asma zoo pull org/name[@revision]" in r.output
    m = write_manifest(tmp_path / "m.json", [ZooEntry("ntu60-student", "my-org/asma-student", "v1.0", "student", "tiny")])
    r = run("list", "--manifest", m)
    assert r.exit_code == 0 and "ntu60-student" in r.output and "my-org/asma-student" in r.output
    r = run("list", "--manifest", m, "--json")
    assert json.loads(r.output)["ntu60-student"]["revision"] == "v1.0"


def test_pull_unknown_alias_is_one_clear_line(run):
    r = run("pull", "ntu60-student")
    assert r.exit_code == 2
    assert r.output.startswith("error: no published model named 'ntu60-student' exists yet; known aliases: none.")
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_push_pull_info_offline(run, hub, saved, tmp_path):
    r = run("push", saved, "org/cli-model", "--endpoint", hub.url, "--tag", "v1")
    assert r.exit_code == 0, r.output
    sha = r.output.split("commit ")[1].split()[0]
    assert len(sha) == 40 and "asma zoo pull hf-hub:org/cli-model@v1" in r.output
    cache = tmp_path / "cache"
    r = run("pull", "hf-hub:org/cli-model@v1", "--endpoint", hub.url, "--cache-dir", cache)
    assert r.exit_code == 0, r.output
    assert f"commit {sha}" in r.output and "classifier" in r.output and "stream bone" in r.output
    r = run("info", "org/cli-model", "--revision", "v1", "--endpoint", hub.url, "--cache-dir", cache)
    assert r.exit_code == 0, r.output
    for text in ("classifier", "stgcn", "ntu25", "bone", "cc-by-nc-4.0", "ntu60-xsub/linear", "81.50", "96.25"):
        assert text in r.output, text
    hub.stop()
    r = run("info", "org/cli-model@v1", "--offline", "--cache-dir", cache, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["metrics"] == {"ntu60-xsub/linear": {"top1": 81.5, "top5": 96.25}}
    r = run("pull", "org/cli-model@v2", "--offline", "--cache-dir", cache)
    assert r.exit_code == 2 and "not in the local cache" in r.output


def test_info_on_a_local_folder_and_errors(run, saved, tmp_path):
    r = run("info", saved)
    assert r.exit_code == 0 and "5 (drink water, eat meal" in r.output and "81.50" in r.output
    (saved / "config.json").write_text(json.dumps({"kind": "encoder"}))
    r = run("info", saved)
    assert r.exit_code == 2 and "config.json: field 'backbone': missing" in r.output
    r = run("push", tmp_path / "missing-dir", "org/x", "--endpoint", "http://127.0.0.1:9")
    assert r.exit_code == 2 and "no model folder" in r.output


def test_subprocess_uses_the_environment(hub, saved, tmp_path):
    from asma.zoo import push_to_hub
    sha = push_to_hub(saved, "org/env-model", endpoint=hub.url)
    env = hub_env(tmp_path / "home", endpoint=hub.url)
    cmd = [sys.executable, "-m", "asma.cli.zoo", "pull", "org/env-model"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"commit {sha}" in p.stdout and str(tmp_path / "home" / "hub") in p.stdout
