// Lets a module library link before its folder has sources of its own.
