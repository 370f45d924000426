"""Test doubles shared by the tests (loopback servers, stub verifiers). Test code, not product."""
