"""giropops-senhas: the password generator demo app."""

# the public modules
__all__ = ["app", "generator", "metrics", "serve", "store", "validation", "worker"]
