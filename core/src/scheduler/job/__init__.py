"""The older AID2E scheduler's ``scheduler.job`` package: its job types and MultiStepsFunction
(see :mod:`aid2e.multi_steps`)."""
