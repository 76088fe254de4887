/* SPDX-License-Identifier: MIT */
/*
 * libpartreg, all of it: #include <partreg/partreg.h> and link with
 * `pkg-config --libs partreg` or CMake's partreg::partreg.
 *
 *   client.h    connect, send commands, follow retained state, readiness
 *               from a summary
 *   interval.h  [start, end) ranges and the readiness rule
 *   time.h      RFC 3339 times <-> microseconds
 *   topic.h     MQTT topic filter matching
 *   error.h     error codes and pr_strerror
 *   log.h       the optional log callback
 *   protocol.h  topic prefix, limits, partition states
 */
#ifndef PARTREG_PARTREG_H
#define PARTREG_PARTREG_H

#include <partreg/client.h>
#include <partreg/error.h>
#include <partreg/interval.h>
#include <partreg/log.h>
#include <partreg/protocol.h>
#include <partreg/time.h>
#include <partreg/topic.h>

#endif
