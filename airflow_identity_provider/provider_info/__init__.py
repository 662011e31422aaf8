"""Per-wing tables that get_provider_info() assembles (data only, no imports)."""
