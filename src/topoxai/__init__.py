"""topoxai: a reproducible heart-disease classifier with topological explanations."""
