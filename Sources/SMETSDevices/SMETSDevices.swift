/// What the hardware does, as values: each behaviour of an emulated device (its HAN link, its OTA
/// client or server, prepayment, messaging and display data, Change of Tenancy handling) is a state
/// machine that takes one input and returns the actions the daemon carries out (frames to send,
/// store changes to commit, events to publish, jobs to schedule). Nothing here does I/O, reads a
/// clock or takes a lock, so every branch is tested in milliseconds without a socket.
public enum SMETSDevices {}
