"""The real-cluster suite: a package, so that its cluster lives only while it runs."""
