"""The ten classes of each dataset, as the figures name them."""

CLASS_NAMES = {  # data.dataset -> (what a label is, the ten names)
    "mnist": ("digit", [str(d) for d in range(10)]),
    "fashion_mnist": (
        "class",
        ["T-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"],
    ),
}
