import re

from medbench.config import Config
from medbench.engine.grid import parent_params
from medbench.metrics import METRIC_NAMES
from medbench.tracking import schema as s


def test_run_names_nest():
    assert s.parent_run_name("resnet18", "gcsam") == "resnet18/gcsam"
    assert s.child_run_name("resnet18", "gcsam", 3) == "resnet18/gcsam/fold3"
    assert s.child_run_name("resnet18", "gcsam", "GDPH") == "resnet18/gcsam/foldGDPH"
    assert s.job_key("resnet18", "gcsam", 3, 1) == "resnet18/gcsam/fold3/seed1"
    assert s.trial_run_name("resnet18", "sam", 3, 2) == "resnet18/sam/fold3/trial2"


def test_repeats_after_the_first_name_their_runs_and_repeat_one_keeps_todays_names():
    assert s.child_run_name("resnet18", "gcsam", 3, repeat=1) == "resnet18/gcsam/fold3"
    assert s.child_run_name("resnet18", "gcsam", 3, repeat=2) == "resnet18/gcsam/r2/fold3"
    assert s.job_key("resnet18", "gcsam", 3, 1, repeat=10) == "resnet18/gcsam/r10/fold3/seed1"
    assert s.trial_run_name("m", "sam", 0, 4, repeat=3) == "m/sam/r3/fold0/trial4"
    assert s.trial_key("m", "sam", 0, 1, 4, repeat=3) == "m/sam/r3/fold0/seed1/trial4"
    assert s.trial_key("m", "sam", 0, 1, 4) == "m/sam/fold0/seed1/trial4"
    assert "repeat" in s.CHILD_PARAMS and s.TAG_REPEAT == "medbench.repeat"
    assert s.TAG_REPEAT in s.RUN_SPECIFIC_TAGS  # it differs between runs: not a common tag


def test_test_metrics_cover_every_metric():
    assert tuple(f"test_{m}" for m in METRIC_NAMES) == s.TEST_METRICS
    assert {"test_auc", "test_accuracy", "best_epoch", "train_time_s"} <= set(s.FINAL_METRICS)


def test_site_metric_names_are_valid_mlflow_names():
    assert s.site_metric("auc", "GDPH") == "test_auc_site_GDPH"
    # refused characters become '_', followed by a digest of the real name
    assert re.fullmatch(r"test_auc_site_SYSUCC _2__[0-9a-f]{8}", s.site_metric("auc", "SYSUCC (2)"))
    assert re.fullmatch(
        r"test_accuracy_site_GDPH_1_[0-9a-f]{8}", s.site_metric("accuracy", "GDPH&1")
    )


def test_parent_params_come_from_real_config_keys():
    params = parent_params(Config(seeds=[0, 2]), "resnet18", "sam")
    assert list(params) == list(s.PARENT_PARAMS)
    assert params["lr"] == Config().optimizer.lr and params["seed"] == "0,2"
    assert params["early_stopping_monitor"] == "val_auc"


def test_prediction_columns_are_ordered_and_required_ones_present():
    assert list(s.PREDICTION_COLUMNS)[:5] == list(s.REQUIRED_PREDICTION_COLUMNS)
    assert set(s.OPTIONAL_PREDICTION_COLUMNS) == {"repeat"} < set(s.PREDICTION_COLUMNS)


def test_site_keys_are_collision_free_and_bounded():
    """Issue 25 #10: 'scanner#1' and 'scanner_1' shared one metric; a 300-character site
    stopped the run at its first metric write."""
    assert s.site_key("GDPH") == "GDPH" and s.site_key("SYSUCC") == "SYSUCC"  # kept as they are
    assert s.site_key("scanner_1") == "scanner_1"
    assert s.site_key("scanner#1") != "scanner_1" and s.site_key("scanner#1").startswith(
        "scanner_1_"
    )
    long = "x" * 300
    assert len(s.site_key(long)) == s.SITE_KEY_MAX and s.site_key(long) != s.site_key(long + "y")
    assert s.site_key("Hôpital") == s.site_key("Hôpital")  # stable across calls and processes
    assert len(s.site_metric("balanced_accuracy", long)) < 250  # MLflow's limit on a metric name
