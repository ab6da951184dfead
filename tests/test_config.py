import json
import warnings
from importlib import resources

import pytest
import yaml

from medbench.config import (
    Config,
    ExternalConfig,
    TrainConfig,
    config_from_dict,
    config_from_logged,
    config_hash,
    data_settings,
    dump_yaml,
    hashed_settings,
    list_configs,
    load_config,
    parse_overrides,
)
from medbench.errors import ConfigError, MedbenchWarning


def _write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_shipped_configs_load():
    assert {"demo", "paper"} <= set(list_configs())
    demo = load_config("demo")
    assert demo.name == "medbench-demo" and demo.optimizers == ["adam", "sam", "gcsam"]
    paper = load_config("paper")
    assert paper.data.image_size == 256 and paper.optimizer.lr == pytest.approx(1e-4)
    assert paper.optimizer.rho == pytest.approx(0.05) and paper.data.folds == "sheet"
    assert not demo.tune.enabled and demo.train.budget.kind == "epochs"  # the demo stays fast
    fair = load_config("fair")
    assert fair.tune.enabled and fair.seeds == [0] and fair.cv.repeats == 3  # 3 x 5 units
    assert fair.train.budget.kind == "gradient_evals" and fair.train.amp == "off"
    assert (fair.models, fair.optimizers, fair.data.image_size) == (
        paper.models,
        paper.optimizers,
        paper.data.image_size,
    )
    demo_fair = load_config("demo-fair")
    assert demo_fair.tune.enabled and demo_fair.data.root is None


def test_overrides_are_typed_and_validated():
    cfg = load_config(
        "demo",
        ["train.epochs=3", "models=[resnet18, smallcnn]", "optimizer.lr=1e-2"],
        data_root="/x",
    )
    assert cfg.train.epochs == 3 and cfg.models == ["resnet18", "smallcnn"]
    assert cfg.optimizer.lr == pytest.approx(0.01) and cfg.data.root == "/x"
    assert parse_overrides(["a.b.c=1"]) == {"a": {"b": {"c": 1}}}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("train: {epoch: 3}", r"train\.epoch: unknown key \(did you mean 'epochs'\?\)"),
        ("trian: {}", r"trian: unknown key \(did you mean 'train'\?\)"),
        ("train: {epochs: three}", r"train\.epochs: expected an integer"),
        ("train: {epochs: 0}", r"train\.epochs: must be at least 1"),
        ("data: {augment: maybe}", r"data\.augment: expected true or false"),
        (
            "models: [resnet81]",
            r"models\[0\]: unknown model 'resnet81' \(did you mean 'resnet18'\?\)",
        ),
        (
            "optimizers: [adam, gcsma]",
            r"optimizers\[1\]: unknown optimizer 'gcsma' \(did you mean 'gcsam'\?\)",
        ),
        (
            "data: {folds: stratifed}",
            r"data\.folds: 'stratifed' is not one of .*did you mean 'stratified'",
        ),
        ("data: {val_fraction: 1.5}", r"data\.val_fraction"),
        (
            "models: [vit_b_16]\ndata: {image_size: 40}",
            r"models\[0\]: model 'vit_b_16' needs image_size divisible by 16",
        ),
        ("train: [1, 2]", r"train: expected a mapping"),
        ("optimizers: [adam, adam]", r"optimizers: listed twice: adam"),
        ("name: a/b", r"name: must be"),
        ("- just\n- a list", r"must be a mapping"),
        ("train: {epochs: [", r"c\.yaml line \d+: not valid YAML"),
    ],
)
def test_bad_configs_name_the_key(tmp_path, text, match):
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, text))


def test_unknown_config_name():
    with pytest.raises(ConfigError, match=r"dmeo: no such config file .*did you mean 'demo'"):
        load_config("dmeo")


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match=r"--set 'train\.epochs': expected KEY=VALUE"):
        load_config("demo", ["train.epochs"])


def test_hash_ignores_store_executor_and_grid_extent():
    base = load_config("demo")
    same = load_config(
        "demo",
        [
            "tracking.uri=sqlite:///x.db",
            "executor.kind=ray",
            "models=[resnet18]",
            "data.root=/elsewhere",
        ],
    )
    other = load_config("demo", ["optimizer.lr=0.5"])
    assert config_hash(base) == config_hash(same)
    assert config_hash(base) != config_hash(other)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["optimizer.rho=0"], r"optimizer\.rho: must be > 0 for sam, gcsam"),
        (["flatness.rho=0"], r"flatness\.rho: must be > 0, got 0"),
        (["flatness.method=hutchinson"], r"flatness\.method: 'hutchinson' is not one of"),
        (["flatness.lanczos_steps=0"], r"flatness\.lanczos_steps: must be at least 1"),
        (["optimizer.lr=-1"], r"optimizer\.lr: must be > 0, got -1"),
        (["optimizer.lr=.nan"], r"optimizer\.lr: must be a finite number"),
        (["optimizer.rho=.inf"], r"optimizer\.rho: must be a finite number"),
        (["optimizer.weight_decay=-0.1"], r"optimizer\.weight_decay: must be >= 0"),
        (["optimizer.momentum=-1"], r"optimizer\.momentum: must be >= 0"),
        (["train.epochs=0"], r"train\.epochs: must be at least 1, got 0"),
        (["train.batch_size=0"], r"train\.batch_size: must be at least 1, got 0"),
        (["train.threshold=1.5"], r"train\.threshold: must be < 1"),
        (["train.threshold=0"], r"train\.threshold: must be > 0"),
        (["train.threads=-2"], r"train\.threads: must be >= 0"),
        (["train.device=tpu"], r"train\.device: 'tpu' is not a device"),
        (["data.image_size=0"], r"data\.image_size: must be at least 1, got 0"),
        (["data.val_fraction=1.0"], r"data\.val_fraction: must be < 1, got 1\.0"),
        (["data.n_folds=1"], r"data\.n_folds: must be >= 2"),
        (["flatness.landscape_points=1"], r"flatness\.landscape_points: must be >= 2, got 1"),
        (["flatness.n_samples=0"], r"flatness\.n_samples: must be at least 1"),
        (["executor.cpus_per_job=0"], r"executor\.cpus_per_job: must be > 0"),
        (["report.rope=-0.01"], r"report\.rope: must be >= 0"),
        (["report.rope=1"], r"report\.rope: must be < 1"),
        (["train.budget.kind=seconds"], r"train\.budget\.seconds: set the wall time"),
        (["train.budget.seconds=60"], r"train\.budget\.seconds: only used with .*kind: seconds"),
        (
            ["train.budget.kind=seconds", "train.budget.gradient_evals=10"],
            r"train\.budget\.gradient_evals: only used with .*kind: gradient_evals",
        ),
        (["train.budget.kind=gradient_evals", "train.budget.gradient_evals=0"], r"must be at"),
        (["train.budget.kind=time"], r"train\.budget\.kind: 'time' is not one of"),
        (
            ["train.budget.kind=seconds", "train.budget.seconds=9", "train.scheduler=cosine"],
            r"train\.scheduler: cosine needs a known number of epochs",
        ),
        (["tune.trials=0"], r"tune\.trials: must be at least 1"),
        (["tune.sampler=bayes"], r"tune\.sampler: 'bayes' is not one of tpe, random, grid"),
        (["tune.objective=test_auc"], r"tune\.objective: 'test_auc' is not one of"),
        (["tune.space.lr_low=0"], r"tune\.space\.lr_low: must be > 0"),
        (["tune.space.rho_high=0.001"], r"tune\.space\.rho_high: must be above rho_low"),
        (
            ["tune.enabled=true", "tune.sampler=grid", "tune.trials=5"],
            r"tune\.trials: 5 trials exceed the grid of adam \(4 points\)",
        ),
        (["report.target_val_auc=0"], r"report\.target_val_auc: must be > 0"),
    ],
)
def test_meaningless_settings_fail_at_load(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config("demo", overrides)


def test_report_rope_changes_no_result_hash():
    base = load_config("demo")
    wider = load_config("demo", ["report.rope=0.02"])
    assert base.report.rope == 0.01 and wider.report.rope == 0.02
    assert config_hash(base) == config_hash(wider)


def test_rho_zero_is_fine_without_sam_even_with_flatness():
    # flatness measures SAM sharpness at its own radius, flatness.rho
    cfg = load_config("demo", ["optimizers=[adam]", "optimizer.rho=0"])
    assert cfg.optimizer.rho == 0 and cfg.flatness.enabled and cfg.flatness.rho == 0.05


def test_what_enters_the_hash_comes_from_field_metadata_and_the_dataset_key_from_the_data():
    base = load_config("demo")
    assert config_hash(base) == config_hash(load_config("demo", ["train.checkpoint_every=5"]))
    assert config_hash(base) != config_hash(load_config("demo", ["flatness.power_tol=0.01"]))
    keys = set(data_settings(base.data).key())
    assert keys == {
        "root",
        "layout",
        "sheet",
        "include_normal",
        "labels",
        "folds",
        "folds_keep",
        "n_folds",
        "image_size",
        "synthetic.n",
        "synthetic.seed",
    }


def test_data_settings_carry_the_data_section_and_keep_the_dataset_key_bytes():
    """The one conversion to what the data layer takes; the per-process dataset cache is keyed
    on exactly the bytes it was keyed on when the data layer read the config itself."""
    cfg = load_config("demo", ["data.folds_keep=[1, 2, 3]", "data.synthetic.n=80"])
    data = data_settings(cfg.data)
    assert data.folds_keep == ("1", "2", "3") and data.synthetic_n == 80
    assert (data.root, data.layout, data.image_size, data.max_image_pixels) == (
        None,
        "auto",
        48,
        89_478_485,
    )
    assert json.dumps([data.key(), 0], sort_keys=True, default=str) == (
        '[{"folds": "auto", "folds_keep": ["1", "2", "3"], "image_size": 48, '
        '"include_normal": false, "labels": "check", "layout": "auto", "n_folds": 5, '
        '"root": null, "sheet": null, "synthetic.n": 80, "synthetic.seed": 0}, 0]'
    )


def test_bare_on_and_off_read_as_choices():
    cfg = load_config("demo", ["train.amp=off", "train.channels_last=on"])
    assert cfg.train.amp == "off" and cfg.train.channels_last == "on"


def test_every_value_of_the_paper_config_cites_its_source():
    text = (resources.files("medbench") / "configs" / "paper.yaml").read_text()
    tags = ("[paper]", "[script]", "[readme]", "[release]", "[medbench]")
    for line in text.splitlines():
        body = line.split("#", 1)[0]
        if ":" in body and not body.rstrip().endswith(":"):  # a key with a value
            assert any(t in line for t in tags), line
    paper = load_config("paper")
    assert paper.train.amp == "off" and paper.train.tf32 == "off"
    assert paper.train.batch_size == 32  # the authors' README's BUS loader (issue 22 #7)
    assert "vit_b_16" not in paper.models


def test_external_datasets_from_the_config_and_the_command_line(tmp_path):
    config_file = tmp_path / "ext.yaml"
    config_file.write_text(
        "data:\n  external:\n    - {root: /data/BUSBRA, name: busbra, sheet: 10-fold-cv.csv}\n"
    )
    cfg = load_config(config_file, external_roots=["/data/BUSI"])
    assert cfg.data.external == [
        ExternalConfig(root="/data/BUSBRA", name="busbra", sheet="10-fold-cv.csv"),
        ExternalConfig(root="/data/BUSI"),
    ]
    base = load_config("demo")
    with_ext = load_config("demo", external_roots=["/data/BUSI"])
    assert config_hash(with_ext) != config_hash(base)  # their metrics belong to the runs
    # not the training data
    assert data_settings(with_ext.data).key() == data_settings(base.data).key()


@pytest.mark.parametrize(
    "overrides, match",
    [
        (["data.folds=none"], r"data\.folds: none trains on every image .* data\.external"),
        (["data.external=[{name: x}]"], r"data\.external\[0\]\.root: the folder .* is required"),
        (["data.external=[{root: /a, name: 'b c'}]"], r"data\.external\[0\]\.name: 'b c' must be"),
        (
            ["data.external=[{root: /a, name: b}, {root: /c, name: b}]"],
            r"data\.external\[1\]\.name: 'b' already names data\.external\[0\]",
        ),
        (
            ["data.external=[{root: /a, layout: busy}]"],
            r"data\.external\[0\]\.layout: 'busy' is not one of",
        ),
        (
            ["data.external=[{root: /a, sheets: x}]"],
            r"data\.external\[0\]\.sheets: unknown key \(did you mean 'sheet'\?\)",
        ),
        (["data.external=/a"], r"data\.external\[0\]: expected a mapping of settings"),
        (
            ["data.layout=bus_bra"],
            r"data\.layout: 'bus_bra' is not one of auto, busbra, busi, breastmnist, gdph_sysucc, flat \(did you mean 'busbra'\?\)",
        ),
    ],
)
def test_dataset_settings_fail_at_load(overrides, match):
    with pytest.raises(ConfigError, match=match):
        load_config("demo", overrides)


def test_folds_none_with_an_external_dataset_loads():
    cfg = load_config("demo", ["data.folds=none"], external_roots=["/data/BUSBRA"])
    assert cfg.data.folds == "none" and cfg.data.external[0].root == "/data/BUSBRA"


# -- the config of finished runs, rebuilt from what they logged -----------------------------------


def test_logged_config_rebuilds_typed_as_it_was_loaded():
    loaded = load_config("demo-fair", ["train.amp=off", "seeds=[0, 1]"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a config of this version: nothing left out
        logged = config_from_logged(yaml.safe_load(dump_yaml(loaded)))
    assert logged.to_dict() == loaded.to_dict() and logged.source == "<logged>"
    assert logged.train.amp == "off" and logged.tune.space.lr_low == pytest.approx(1e-4)
    assert config_hash(logged) == config_hash(loaded)


def test_logged_config_of_an_older_version_drops_unknown_keys_in_one_warning():
    old = {
        "name": "old",
        "train": {"epochs": 7, "mixed_precision": True, "early_stopping": {"metric": "val_auc"}},
        "data": {"external": [{"root": "/bra", "kind": "busbra"}]},
        "legacy": {"x": 1},
    }
    with pytest.warns(MedbenchWarning) as caught:
        cfg = config_from_logged(old)
    assert len(caught) == 1
    message = str(caught[0].message)
    for key in ("train.mixed_precision", "train.early_stopping.metric", "data.external[0].kind"):
        assert key in message
    assert "legacy" in message and "train.epochs" not in message
    # what was logged is kept; what was not takes today's defaults, from the dataclasses
    assert cfg.name == "old" and cfg.train.epochs == 7 and cfg.data.external[0].root == "/bra"
    assert cfg.train.threshold == TrainConfig().threshold and cfg.optimizers == Config().optimizers
    assert cfg.train.early_stopping.patience == TrainConfig().early_stopping.patience


def test_logged_config_keeps_values_todays_rules_reject():
    logged = {
        "models": ["retired_net"],
        "optimizers": ["sam", "lion"],
        "optimizer": {"rho": 0.0},  # 0 with sam: rejected at load today
        "train": {"threshold": 1.5, "amp": False},  # out of range; YAML's bare off
        "tune": {"trials": 99, "sampler": "grid"},  # more trials than the grid has points
    }
    with pytest.raises(ConfigError):  # as a new config, it would not load
        config_from_dict(logged)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = config_from_logged(logged)
    assert cfg.models == ["retired_net"] and cfg.optimizers == ["sam", "lion"]
    assert cfg.optimizer.rho == 0.0 and cfg.train.threshold == 1.5 and cfg.train.amp == "off"
    assert cfg.tune.trials == 99


def test_logged_value_of_the_wrong_type_is_left_out_with_the_unknown_keys():
    with pytest.warns(MedbenchWarning, match=r"train\.epochs, train\.batch_size"):
        cfg = config_from_logged({"train": {"epochs": "many", "batch_size": [32]}})
    assert cfg.train.epochs == TrainConfig().epochs and cfg.train.batch_size == 32


def test_no_logged_config_is_every_default():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert config_from_logged(None).to_dict() == Config().to_dict()
        assert config_from_logged({}).to_dict() == Config().to_dict()


def test_repeats_choose_jobs_and_leave_the_hash_alone():
    base = load_config("demo")
    assert base.cv.repeats == 1
    three = load_config("demo", ["cv.repeats=3"])
    # raising cv.repeats later finds the finished repeats again; r = 1 hashes as before
    assert config_hash(three) == config_hash(base)
    assert not [k for k in hashed_settings(base) if k.startswith("cv.")]
    with pytest.raises(ConfigError, match=r"^cv\.repeats: must be at least 1, got 0$"):
        load_config("demo", ["cv.repeats=0"])
    with pytest.raises(ConfigError, match=r"^cv\.repeats: 3 repeats .*leave-one-site-out"):
        load_config("demo", ["cv.repeats=3", "data.folds=site"])
    with pytest.raises(ConfigError, match=r"^cv\.repeat: unknown key.*'repeats'"):
        load_config("demo", ["cv.repeat=3"])
