// CLibWebSockets: the thin, private C face of libwebsockets for StateCast.
//
// Only HostBroadcaster and ViewerClient import this module, and neither lets
// an lws_* type appear in its public API. Macros and struct plumbing that
// Swift cannot express well become small prefixed `statecast_` functions.
#ifndef STATECAST_CLIBWEBSOCKETS_H
#define STATECAST_CLIBWEBSOCKETS_H

#include <libwebsockets.h>
#include "statecast-common.h"
#include "statecast-server.h"
#include "statecast-client.h"

#endif
