"""polyfactory factories for the datalayer models (install the ``factories`` extra)."""
