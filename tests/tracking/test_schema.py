from medbench.config import Config
from medbench.engine.grid import parent_params
from medbench.metrics import METRIC_NAMES
from medbench.tracking import schema as s


def test_run_names_nest():
    assert s.parent_run_name("resnet18", "gcsam") == "resnet18/gcsam"
    assert s.child_run_name("resnet18", "gcsam", 3) == "resnet18/gcsam/fold3"
    assert s.child_run_name("resnet18", "gcsam", "GDPH") == "resnet18/gcsam/foldGDPH"
    assert s.job_key("resnet18", "gcsam", 3, 1) == "resnet18/gcsam/fold3/seed1"


def test_test_metrics_cover_every_metric():
    assert tuple(f"test_{m}" for m in METRIC_NAMES) == s.TEST_METRICS
    assert {"test_auc", "test_accuracy", "best_epoch", "train_time_s"} <= set(s.FINAL_METRICS)


def test_site_metric_names_are_valid_mlflow_names():
    assert s.site_metric("auc", "GDPH") == "test_auc_site_GDPH"
    assert s.site_metric("auc", "SYSUCC (2)") == "test_auc_site_SYSUCC _2_"
    assert s.site_metric("accuracy", "GDPH&1") == "test_accuracy_site_GDPH_1"


def test_parent_params_come_from_real_config_keys():
    params = parent_params(Config(seeds=[0, 2]), "resnet18", "sam")
    assert list(params) == list(s.PARENT_PARAMS)
    assert params["lr"] == Config().optimizer.lr and params["seed"] == "0,2"
    assert params["early_stopping_monitor"] == "val_auc"


def test_prediction_columns_are_ordered_and_required_ones_present():
    assert list(s.PREDICTION_COLUMNS)[:5] == list(s.REQUIRED_PREDICTION_COLUMNS)
