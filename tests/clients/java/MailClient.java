// SPDX-License-Identifier: GPL-3.0-or-later
// A mail client on Java's JSSE, for the client matrix: IMAPS (implicit TLS) through an SSLSocket with the default
// SSLContext (the trust store comes from -Djavax.net.ssl.trustStore) and endpoint identification on, as Java mail
// libraries verify servers. Prints "accepted" and exits 0 when the handshake verified; prints the error and exits 1
// otherwise.
//
// usage: java -Djavax.net.ssl.trustStore=STORE MailClient HOST PORT

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

public final class MailClient {
    private MailClient() {
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: MailClient HOST PORT");
            System.exit(2);
        }
        try (SSLSocket socket = (SSLSocket) SSLSocketFactory.getDefault().createSocket(args[0],
                Integer.parseInt(args[1]))) {
            socket.setSoTimeout(20000);
            SSLParameters parameters = socket.getSSLParameters();
            parameters.setEndpointIdentificationAlgorithm("HTTPS");
            socket.setSSLParameters(parameters);
            socket.startHandshake();
            BufferedReader reader = new BufferedReader(new InputStreamReader(socket.getInputStream(),
                    StandardCharsets.US_ASCII));
            String greeting = reader.readLine();
            System.out.println("accepted: " + greeting);
        } catch (Exception exc) {
            System.out.println(exc);
            System.exit(1);
        }
    }
}
