"""Framework-free runtime modules copied into every backend's output."""
