"""Everything that talks to Kubernetes. The only package that imports `kubernetes`."""
