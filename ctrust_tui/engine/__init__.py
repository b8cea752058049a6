"""Model loading, device choice and batched streaming generation (owns torch/transformers)."""
