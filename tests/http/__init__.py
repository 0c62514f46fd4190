"""Tests of the HTTP layer shared by the two front doors (socketwire.http)."""
