import CLibWebSockets
print("x")
