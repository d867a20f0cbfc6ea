"""Reference data: structures, labelers, the sampling protocol, readers/writers and splits."""
