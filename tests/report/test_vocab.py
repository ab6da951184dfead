import pandas as pd

from medbench.metrics import METRIC_NAMES
from medbench.optim import list_optimizers
from medbench.report import vocab
from medbench.report.clinical import READERS
from medbench.tracking import colours


def test_every_metric_has_a_label_and_a_capitalised_header():
    assert set(METRIC_NAMES) <= set(vocab.METRIC_LABELS)
    assert vocab.metric_label("accuracy") == "accuracy"
    assert vocab.metric_label("accuracy", capitalised=True) == "Accuracy"
    assert vocab.metric_label("balanced_accuracy", capitalised=True) == "Balanced accuracy"
    assert vocab.metric_label("auc", capitalised=True) == "AUC"
    assert vocab.metric_label("new_metric") == "new_metric"


def test_every_registered_optimizer_has_a_place_and_a_fixed_colour():
    assert set(list_optimizers()) <= set(vocab.KNOWN_OPTIMIZERS)
    assert set(vocab.KNOWN_OPTIMIZERS) == set(colours.OPTIMIZER_COLOURS)
    assert len(set(colours.OPTIMIZER_COLOURS.values())) == len(colours.OPTIMIZER_COLOURS)
    assert not set(colours.EXTRA_COLOURS) & set(colours.OPTIMIZER_COLOURS.values())


def test_ordering_puts_the_config_first_then_known_then_alphabetical():
    found = ["zeta", "sam", "adam", "alpha", "gcsam"]
    assert vocab.ordered(found, ["gcsam", "sam", "gcsam", "adam"]) == [
        "gcsam",
        "sam",
        "adam",
        "alpha",
        "zeta",
    ]
    assert vocab.ordered(["sgd", "adam", None, "gcsam"], vocab.KNOWN_OPTIMIZERS) == [
        "adam",
        "gcsam",
        "sgd",
    ]


def test_colours_fixed_for_known_optimizers_and_deterministic_for_others():
    a = colours.optimizer_colours(["sam", "adam", "zeta", "alpha"])
    b = colours.optimizer_colours(["alpha", "zeta", "adam", "sam"])
    assert a == b
    assert a["adam"] == "#0072B2" and a["sam"] == "#E69F00"
    assert a["alpha"] == colours.EXTRA_COLOURS[0] and a["zeta"] == colours.EXTRA_COLOURS[1]


def test_readers_named_and_drawn_apart_from_the_optimizers():
    assert set(READERS) == set(vocab.READER_STYLES)
    one, two = (vocab.reader_style(r) for r in ("birads_reader1", "birads_reader2"))
    assert (one.name, two.name) == ("Reader 1", "Reader 2")
    assert one.marker != two.marker
    assert not {one.colour, two.colour} & set(colours.OPTIMIZER_COLOURS.values())
    assert vocab.reader_style("birads_reader3").name == "birads_reader3"


def test_in_order_puts_the_configs_optimizers_first_in_every_column():
    frame = pd.DataFrame(
        {
            "model": ["m", "m", "m", "n"],
            "optimizer_a": ["adam", "sam", "adam", "adam"],
            "optimizer_b": ["sam", "gcsam", "gcsam", "sam"],
            "x": [1, 2, 3, 4],
        }
    )
    out = vocab.in_order(frame, ["n", "m"], ["sam", "adam", "gcsam"])
    assert list(out["x"]) == [4, 2, 1, 3]


def test_known_optimizers_are_the_registry_in_reading_order():
    assert set(vocab.KNOWN_OPTIMIZERS) == set(list_optimizers())
    assert vocab.KNOWN_OPTIMIZERS == ("adam", "sam", "gcsam", "asam", "sgd", "adamw")
