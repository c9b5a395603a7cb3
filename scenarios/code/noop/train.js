// A no-op training script: the benchmark measures the platform around it.
