from medbench.data.messages import listing, plural


def test_plural():
    assert plural(1, "image") == "1 image" and plural(0, "image") == "0 images"
    assert plural(2, "bad ID") == "2 bad IDs"


def test_listing_names_five_then_counts_the_rest():
    assert listing(["a", "b"]) == "a, b"
    assert listing([str(i) for i in range(7)]) == "0, 1, 2, 3, 4 and 2 more"
