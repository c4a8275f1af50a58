"""What a run writes: the folder layout and its file names, and how a record is written
(atomically, versioned) and read."""
