//! pairalign-train end to end: each tokenizer's objective on small models and its training loop
//! on tiny feature caches (the loss falls, a stopped and resumed run ends byte-identical, a
//! checkpoint refuses other data), one module per tokenizer.
// Helpers that build the test data and the device-generic test bodies are plain `fn`s, which
// clippy's allow-unwrap-in-tests does not cover.
#![allow(clippy::unwrap_used)]

/// Runs a test `fn NAME(device: &Device)` on the CPU as `NAME_cpu`, and on the first CUDA device
/// as `NAME_cuda` when built with `--features cuda` (candle's `test_device!`), where a GPU is.
macro_rules! test_device {
    ($name:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        fn $cpu() {
            $name(&Device::Cpu);
        }

        /// Skipped (passes, saying so) on a machine without a GPU.
        #[cfg(feature = "cuda")]
        #[test]
        fn $cuda() {
            match Device::new_cuda(0) {
                Ok(device) => $name(&device),
                Err(e) => eprintln!(
                    "skipped: no CUDA device ({})",
                    e.to_string().lines().next().unwrap_or_default()
                ),
            }
        }
    };
}

mod pairalign;
mod vq;
