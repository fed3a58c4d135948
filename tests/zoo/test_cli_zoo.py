"""``asma zoo`` click group: in-process with explicit --endpoint/--cache-dir, plus one subprocess run
configured only through the environment (HF_ENDPOINT / HF_HOME / HF_HUB_OFFLINE are read at import)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from asma.cli.zoo import zoo
from hub_server import hub_env


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(zoo, [str(a) for a in args])
    return invoke


def test_list_shows_state_size_metric_and_licence(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ASMA_ZOO_CACHE", str(tmp_path / "zoo"))
    monkeypatch.setenv("COLUMNS", "160")
    r = run("list")
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in r.output.splitlines() if line.startswith("│") and line.split("│")[1].strip()}
    assert rows["actclr-ntu60-xview-joint"][:5] == ["classifier", "pullable", "0.84 M", "1.22", "87.1 linear"]
    assert rows["actclr-ntu60-xview-joint"][5].startswith("MIT code")
    assert rows["ntu60-student"][:2] == ["student", "recipe"] and rows["ntu60-student"][4] == "80.5 distill*"
    r = run("list", "--json")
    data = json.loads(r.output)
    assert data["ntu60-student"]["state"] == "recipe" and data["aimclr-ntu60-xview-joint"]["state"] == "pullable"
    assert data["crosnnclr-ntu60-xview-joint"]["url"]["sha256"].startswith("f569151c")


def test_pull_of_a_recipe_says_what_it_is(run):
    r = run("pull", "ntu60-student")
    assert r.exit_code == 2 and "Traceback" not in r.output
    out = " ".join(r.output.split())
    assert out.startswith("error: 'ntu60-student' is a recipe: no one has trained it yet")
    for text in ("asma zoo build ntu60-student --data-dir DATA_DIR", "asma data prepare ntu60",
                 "expected cost: not measured", "expected metrics: ntu60-xsub/distill top-1 80.5 %",
                 "Models that can be pulled now: actclr-ntu60-xview-joint (ntu60-xview/linear top-1 87.1 %)"):
        assert text in out, text
    r = run("pull", "ntu61-student")
    assert r.exit_code == 2 and "no model named 'ntu61-student' in the zoo" in r.output


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
