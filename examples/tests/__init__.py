"""Tests of the example service, written as a user of datalayer would write them."""
