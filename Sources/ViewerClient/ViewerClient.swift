// The driver comes in a later step.
