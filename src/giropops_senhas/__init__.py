"""giropops-senhas: the password generator demo app."""
