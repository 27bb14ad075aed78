// Client-side helpers (ViewerClient).
#ifndef STATECAST_CLIENT_H
#define STATECAST_CLIENT_H

#include <libwebsockets.h>

#endif
