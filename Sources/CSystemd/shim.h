#ifndef SMETSD_CSYSTEMD_SHIM_H
#define SMETSD_CSYSTEMD_SHIM_H
// libsystemd, as SystemdKit uses it. Only non-variadic entry points are called from Swift
// (sd_notify, sd_watchdog_enabled, sd_listen_fds_with_names, sd_journal_sendv), so no inline
// wrappers are needed here; a variadic function (sd_journal_send, sd_notifyf) would need one.
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#endif
