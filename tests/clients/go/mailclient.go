// SPDX-License-Identifier: GPL-3.0-or-later
// A mail client on Go's crypto/tls, for the client matrix: SMTP STARTTLS through net/smtp, as Go mail tools use it,
// trusting only the given root. Prints "accepted" and exits 0 when the handshake verified; prints the error and
// exits 1 otherwise.
//
// usage: mailclient HOST PORT ROOT_PEM
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: mailclient HOST PORT ROOT_PEM")
		os.Exit(2)
	}
	host, port, rootFile := os.Args[1], os.Args[2], os.Args[3]
	if err := starttls(host, port, rootFile); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("accepted")
}

func starttls(host, port, rootFile string) error {
	pem, err := os.ReadFile(rootFile)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", rootFile)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 10*time.Second)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	client, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.StartTLS(&tls.Config{ServerName: host, RootCAs: roots}); err != nil {
		return err
	}
	return client.Quit()
}
