// The devices folder's values (LabSnapshot, Settings, AccessConfiguration) are part of the daemon's
// own API: `Daemon` and `Engine` take them, so their clients see them without a second import.
@_exported import SMETSConfig
