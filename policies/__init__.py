"""Policies as files: authorisation (Cedar), contact, retention and legal rules, and the
field catalogue (YAML), loaded and validated by the packages that use them."""
