"""The collection evidence: contact attempts and outcomes on every channel, and the
contact-policy firewall asked before every contact."""
