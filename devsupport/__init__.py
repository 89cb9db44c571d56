"""Development support shared by the test suite and the benchmark: nothing here ships in the
service (the wheel packages only `app` and `kubesim`)."""
