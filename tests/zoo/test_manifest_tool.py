"""``python -m asma.zoo.manifest_tool``: the built-in manifest's measured facts (sha256, size,
params, GFLOPs, agreement on the real NTU-60 samples) are those recomputed from the real lineage
checkpoints and from the code, so the manifest cannot drift; drift is found and rewritten."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from asma.zoo.manifest_tool import main
from asma.zoo.registry import builtin_manifest_path


@pytest.mark.slow
def test_builtin_manifest_matches_the_real_checkpoints_and_the_code(realdata):
    r = CliRunner().invoke(main, ["--lineage-dir", str(realdata / "lineage_checkpoints"),
                                  "--ntu-dir", str(realdata / "ntu60_raw_skeleton"), "--check"])
    assert r.exit_code == 0, r.output
    assert "not checked" not in r.output  # every url and recipe entry, and the agreement
    n = len(json.loads(builtin_manifest_path().read_text())["models"])
    assert r.output.splitlines()[-1] == f"{n} entries recomputed, 0 field(s) differ"


def test_check_finds_drift_and_write_fixes_only_it(tmp_path):
    models = json.loads(builtin_manifest_path().read_text())["models"]
    good = {"format_version": 2, "models": {a: models[a] for a in ("ntu60-student", "nwucla-teacher",
                                                                   "actclr-ntu60-xview-joint")}}
    text = json.dumps(good, indent=2) + "\n"
    bad = json.loads(text)
    bad["models"]["ntu60-student"]["gflops"] = 0.414  # the convolution-first count of an older asma
    bad["models"]["nwucla-teacher"]["params"] = 809498  # the quick preset's model
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(bad, indent=2) + "\n")
    run = CliRunner().invoke
    r = run(main, ["--manifest", str(path), "--check"])
    assert r.exit_code == 1
    lines = r.output.splitlines()
    assert f"differs ntu60-student: gflops: manifest 0.414, recomputed {models['ntu60-student']['gflops']!r}" in lines
    assert f"differs nwucla-teacher: params: manifest 809498, recomputed {models['nwucla-teacher']['params']}" in lines
    assert "not checked: actclr-ntu60-xview-joint (url entry; pass --lineage-dir)" in lines
    assert lines[-1] == "2 entries recomputed, 2 field(s) differ"
    r = run(main, ["--manifest", str(path), "--write"])
    assert r.exit_code == 0 and r.output.splitlines()[-1] == "2 entries recomputed, 2 field(s) rewritten"
    assert path.read_text() == text  # the two facts fixed, every other byte as it was
    assert run(main, ["--manifest", str(path), "--check"]).exit_code == 0


def test_a_missing_checkpoint_is_one_line(tmp_path):
    r = CliRunner().invoke(main, ["--lineage-dir", str(tmp_path), "--check"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert ("Error: actclr-ntu60-xview-joint: no file named 'epoch100_acc87.14_model.pt' under "
            f"{tmp_path} (the file of its url.path)") in r.output
    r = CliRunner().invoke(main, [])
    assert r.exit_code == 2 and "pass --check or --write" in r.output
    from asma.zoo.registry import Recipe, ZooEntry, write_manifest
    path = write_manifest(tmp_path / "m.json", [ZooEntry("x-student", "student", recipe=Recipe(
        "foo-xsub", "tiny", ["pretrain", "linear", "distill"], "student"))])
    r = CliRunner().invoke(main, ["--manifest", str(path), "--check"])
    assert r.exit_code == 2 and "recipe dataset 'foo-xsub' is neither 'synthetic' nor a prepared dataset" in r.output
