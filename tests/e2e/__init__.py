"""The real `tillit` command end to end in a temporary folder; the loops; fuzz; notebooks."""
