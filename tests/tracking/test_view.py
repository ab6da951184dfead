import json

from medbench.tracking import schema as s
from medbench.tracking.colours import OPTIMIZER_COLOURS
from medbench.tracking.view import RUNS_VIEW, VIEW_NAME, experiment_tags, run_tags, view_tag


def test_the_view_shows_the_comparison_columns_in_order():
    assert RUNS_VIEW["selectedColumns"] == [
        "params.`optimizer`",
        "params.`fold`",
        "metrics.`cv_test_auc_mean`",
        "metrics.`cv_test_accuracy_mean`",
        "metrics.`test_auc`",
        "metrics.`test_accuracy`",
    ]
    assert RUNS_VIEW["columnOrder"] == ["attributes.`Run Name`", *RUNS_VIEW["selectedColumns"]]
    assert set(RUNS_VIEW["columnWidths"]) == set(RUNS_VIEW["columnOrder"])
    # parents are created in the config's order: oldest first keeps Adam, SAM, GCSAM together
    assert (RUNS_VIEW["orderByKey"], RUNS_VIEW["orderByAsc"]) == ("attributes.start_time", True)
    metrics = [c.split("`")[1] for c in RUNS_VIEW["selectedColumns"] if c.startswith("metrics")]
    assert set(metrics) <= set(s.TEST_METRICS) | {s.cv_mean(m) for m in s.AGGREGATED_METRICS}


def test_the_tag_is_mlflows_saved_view_envelope():
    envelope = json.loads(view_tag(now_ms=1234))
    assert envelope == {
        "name": VIEW_NAME,
        "createdAt": 1234,
        "updatedAt": 1234,
        "state": json.dumps(RUNS_VIEW),
    }


def test_experiment_tags_are_written_when_missing_or_outdated_never_over_a_users_view():
    new = experiment_tags()
    assert set(new) == {s.TAG_EXPERIMENT_KIND, s.TAG_VIEW}
    assert experiment_tags(new) == {}
    older = json.dumps({"name": VIEW_NAME, "createdAt": 5, "updatedAt": 5, "state": "{}"})
    assert set(experiment_tags({**new, s.TAG_VIEW: older})) == {s.TAG_VIEW}
    assert set(experiment_tags({**new, s.TAG_VIEW: "not json"})) == {s.TAG_VIEW}
    saved_over = json.dumps({"name": "mine", "createdAt": 5, "updatedAt": 9, "state": "{}"})
    assert experiment_tags({**new, s.TAG_VIEW: saved_over}) == {}
    # a kind the user chose stays
    assert experiment_tags({**new, s.TAG_EXPERIMENT_KIND: "genai_development"}) == {}


def test_runs_take_the_reports_colour_of_their_optimizer():
    assert run_tags("gcsam") == {s.TAG_RUN_COLOUR: OPTIMIZER_COLOURS["gcsam"]}
    assert run_tags("not-registered") == {}
