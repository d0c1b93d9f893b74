"""Layer 3 models (torch): CLIP image/text branch, sparse LiDAR encoder, fusion and heads."""
