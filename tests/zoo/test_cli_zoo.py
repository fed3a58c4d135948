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


def _rows(output: str) -> dict:
    """``{name: [cells]}`` of a rendered ``asma zoo list`` table (cells are separated by 2+ spaces)."""
    import re
    out = {}
    for line in output.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 5 and re.match(r"^[a-z0-9][a-z0-9._-]+$", cells[0]) and cells[0] != "name":
            out[cells[0]] = cells[1:]
    return out


def test_list_shows_state_size_metric_and_licence(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ASMA_ZOO_CACHE", str(tmp_path / "zoo"))
    monkeypatch.setenv("COLUMNS", "80")
    r = run("list")
    assert r.exit_code == 0, r.output
    rows = _rows(r.output)
    assert rows["actclr-ntu60-xview-joint"] == ["pullable", "0.84 M", "1.19", "87.1 linear", "[1]"]
    assert rows["ntu60-student"] == ["recipe", "0.18 M", "0.388", "80.5 distill*", "[2]"]
    assert rows["synthetic-student"][-1] == "[3]"
    assert "[1] MIT code, NTU data research-only" in r.output and "[3] apache-2.0" in r.output
    assert max(len(line) for line in r.output.splitlines()) <= 80
    monkeypatch.setenv("COLUMNS", "120")
    r = run("list", "--wide")
    wide = _rows(r.output)
    assert wide["actclr-ntu60-xview-joint"] == ["classifier", "pullable", "0.84 M", "1.19", "87.1 linear",
                                                "MIT code, NTU data research-only"]
    assert wide["ntu60-student"][:2] == ["student", "recipe"] and wide["synthetic-student"][-1] == "apache-2.0"
    r = run("list", "--json")
    data = json.loads(r.output)
    assert data["ntu60-student"]["state"] == "recipe" and data["aimclr-ntu60-xview-joint"]["state"] == "pullable"
    assert data["crosnnclr-ntu60-xview-joint"]["url"]["sha256"].startswith("f569151c")


def test_list_table_is_readable_at_80_columns(tmp_path):
    """No line over 80 columns and every row on one line: the state, params, GFLOPs and metric
    cells whole, long licences as footnotes explained under the table (also for a long alias)."""
    import io

    from rich.console import Console

    from asma.cli.zoo import zoo_table
    from asma.zoo.registry import Recipe, ZooEntry, list_entries
    long = ZooEntry("an-organisation-student-x", "student", license="CC-BY-NC-4.0 weights, NTU terms", params=123456,
                    gflops=0.01234, recipe=Recipe("synthetic", "tiny", ["pretrain"], "student",
                                                  expected={"synthetic-xsub/distill-ft": {"top1": 99.9}}))
    entries = list_entries() + [long]
    table, notes = zoo_table(entries, tmp_path / "zoo")
    con = Console(width=80, file=io.StringIO(), highlight=False)
    con.print(table)
    for line in notes:
        con.print(line)
    text = con.file.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    rows = _rows(text)
    assert sorted(rows) == sorted(e.alias for e in entries)
    for e in entries:
        state, params, gflops, metric, lic = rows[e.alias]
        assert state in ("pullable", "recipe") and params == (f"{e.params / 1e6:.2f} M" if e.params else "-")
        assert gflops == (f"{e.gflops:.3g}" if e.gflops else "-") and (metric == "-" or metric[0].isdigit())
        assert lic.startswith("[") and f"{lic} {e.license}" in text
    assert rows["an-organisation-student-x"][:4] == ["recipe", "0.12 M", "0.0123", "99.9 distill-ft*"]


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
