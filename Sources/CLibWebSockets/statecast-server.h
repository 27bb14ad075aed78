// Server-side helpers (HostBroadcaster).
#ifndef STATECAST_SERVER_H
#define STATECAST_SERVER_H

#include <libwebsockets.h>

#endif
