"""Step inputs and outputs: the models at the state machine's boundaries, in parts by step (a function
imports the part of its step, not every step's models).

Each step returns only its own result; the ASL places it with ResultPath. Inputs ignore the fields a step
does not need, so the ASL can hand a step a slice of the execution state without a reshaping Pass.
"""
