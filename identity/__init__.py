"""Identity: users with passwords and TOTP, sessions with step-up, API clients with scopes."""
