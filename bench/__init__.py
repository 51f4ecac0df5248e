"""The public benchmark of faulty and healthy training setups that `torchmedic.diagnose()` is measured on."""
