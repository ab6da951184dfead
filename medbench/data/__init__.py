"""Data layer: dataset folder -> manifest -> folds -> preprocessed tensors."""
