"""The example service's tests: datalayer's pytest plugin gives the database, its factories the data."""

pytest_plugins = ["datalayer.pytest_plugin"]
