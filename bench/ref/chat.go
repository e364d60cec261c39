// Peer: a goroutine-per-client chat server in Go: each line a client sends
// goes to every other client, prefixed "<userN> ". A writer goroutine per
// client drains a buffered channel; a client whose channel is full is
// dropped (it would otherwise stall everyone). Prints "tcp PORT" when ready.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"sync"
)

type client struct {
	out  chan []byte
	conn net.Conn
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = "127.0.0.1:" + os.Args[1]
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	fmt.Printf("tcp %d\n", l.Addr().(*net.TCPAddr).Port)
	var mu sync.Mutex
	clients := map[*client]bool{}
	n := 0
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		n++
		cl := &client{out: make(chan []byte, 1024), conn: c}
		name := fmt.Sprintf("<user%d> ", n)
		mu.Lock()
		clients[cl] = true
		mu.Unlock()
		go func() {
			w := bufio.NewWriterSize(c, 16384)
			for m := range cl.out {
				w.Write(m)
				if len(cl.out) == 0 {
					if w.Flush() != nil {
						break
					}
				}
			}
			c.Close()
		}()
		go func() {
			r := bufio.NewReaderSize(c, 4096)
			for {
				line, err := r.ReadBytes('\n')
				if err != nil {
					break
				}
				msg := append([]byte(name), line...)
				mu.Lock()
				for o := range clients {
					if o == cl {
						continue
					}
					select {
					case o.out <- msg:
					default: // too slow: dropped
						delete(clients, o)
						close(o.out)
					}
				}
				mu.Unlock()
			}
			mu.Lock()
			if clients[cl] {
				delete(clients, cl)
				close(cl.out)
			}
			mu.Unlock()
		}()
	}
}
