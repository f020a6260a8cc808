//! Test harness: throwaway servers and child processes for integration tests.
